"""The WSGI entry point for production servers (``gunicorn -c deploy/gunicorn.conf.py wsgi:app``).

Each worker imports this module once; with ``COURSEBOTS_WARM_ON_START`` set it loads the embedding model and the
recently used courses' indexes before it takes its first request.
"""
from lti_tool import create_app
from lti_tool.app import warm_worker

app = create_app()
warm_worker(app)
