"""CourseBots' Flask app shell and LTI 1.3 protocol; ``flask --app lti_tool`` finds :func:`create_app`."""
from lti_tool.app import create_app

__all__ = ["create_app"]
