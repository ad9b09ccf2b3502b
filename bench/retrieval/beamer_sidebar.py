"""Rebuild a real public lecture deck with a Beamer navigation sidebar, for the furniture benchmark.

The GraWIToN statistics lectures (Matthew Pitkin, MIT licence, github.com/mattpitkin/GraWIToNStatisticsLectures
@09175a3) are Beamer slides made with the metropolis theme, which has no sidebar. This script takes part 1's LaTeX
source unchanged, adds a ``\\section`` before the first frame of each of its eight topics (so the sidebar lists
them, as lecture decks do) and compiles it with the Goettingen theme (a right-hand sidebar with the title, author
and the section list on every page) with Debian's pdflatex (texlive-latex-recommended, texlive-pictures).
Usage: python bench/retrieval/beamer_sidebar.py REPO_CHECKOUT OUT_DIR
then: python bench/retrieval/furniture.py OUT_DIR/stats_part01_goettingen.pdf
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from pathlib import Path

SECTIONS = {  # first frame title of a topic -> the section name the sidebar shows
    "Introduction": "Introduction", "Rules of probability": "Rules of probability",
    "Bayes' theorem": "Bayes' theorem", "Frequentist approach": "Frequentist approach",
    "Some important pdfs: discrete case": "Important pdfs", "Moments of a pdf": "Moments",
    "Change of variables in pdf": "Change of variables", "Multivariate distributions": "Multivariate distributions",
}
HEADER = r"""\documentclass[11pt]{beamer}
\usetheme{Goettingen}
\usepackage[utf8]{inputenc}
\usepackage{amsmath,amssymb,mathtools,graphicx,xcolor}
\newcommand{\redub}[1]{\underbrace{#1}}
\newcommand{\redob}[1]{\overbrace{#1}}
\newcommand{\citep}[1]{[#1]}
"""
BEGIN = r"""\title{\mytitle}\author{\myauthor}\institute{\affiliation}\date{\mydate}
\begin{document}
\frame{\titlepage}"""


def sidebar_source(source: str) -> str:
    """Part 1's LaTeX with sections before each topic and a self-contained Goettingen preamble."""
    lines = source.split("\n")
    inserts: dict[int, str] = {}
    for number, line in enumerate(lines):
        match = re.match(r"\\frametitle\{(.*)\}", line)
        if match and match.group(1) in SECTIONS and SECTIONS[match.group(1)] not in inserts.values():
            start = number
            while not lines[start].startswith(r"\begin{frame}"):
                start -= 1
            inserts[start] = SECTIONS[match.group(1)]
    out = []
    for number, line in enumerate(lines):
        if number in inserts:
            out.append(rf"\section{{{inserts[number]}}}")
        out.append(line)
    text = "\n".join(out)
    text = text.replace(r"\input{mmd-beamer-header-11pt}", HEADER).replace(r"\input{mmd-beamer-begin-doc}", BEGIN)
    return text.replace(r"\input{mmd-beamer-footer}", r"\end{document}")


def main() -> None:
    """Write and compile the sidebar deck (twice, for the navigation)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("repo", type=Path, help="a checkout of mattpitkin/GraWIToNStatisticsLectures")
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(args.repo / "figures", args.out / "figures", dirs_exist_ok=True)
    tex = args.out / "stats_part01_goettingen.tex"
    tex.write_text(sidebar_source((args.repo / "stats_part01.tex").read_text()))
    for _ in range(2):
        subprocess.run(["pdflatex", "-interaction=nonstopmode", tex.name], cwd=args.out,
                       stdout=subprocess.DEVNULL, check=False, timeout=600)
    print(args.out / "stats_part01_goettingen.pdf")


if __name__ == "__main__":
    main()
