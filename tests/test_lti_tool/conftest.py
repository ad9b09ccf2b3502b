"""Fixtures of tests/test_lti_tool: the fake LTI platform (``platform``, ``registered_platform``).

Other test folders reuse the same platform by loading tests/test_lti_tool/lti_platform.py the same way.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def _load_platform_module() -> object:
    name = "coursebots_tests_lti_platform"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("lti_platform.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


lti_platform = _load_platform_module()
platform = lti_platform.platform  # type: ignore[attr-defined]
registered_platform = lti_platform.registered_platform  # type: ignore[attr-defined]
