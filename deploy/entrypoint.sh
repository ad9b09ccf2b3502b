#!/bin/sh
# The container's entrypoint (also usable on a plain machine): `entrypoint.sh web|worker|migrate|purge|model [args]`.
#   web      migrate (when MIGRATE_ON_START=1, the default), then gunicorn with deploy/gunicorn.conf.py
#   worker   an RQ worker for ingestion jobs
#   migrate  apply database migrations and exit (a Kubernetes Job / init container)
#   purge    one retention purge and exit (a CronJob)
#   model    the OpenAI-compatible model server (arguments passed on, e.g. --model /models/x --port 8001)
# Anything else is executed as given. Secrets come from the environment (Kubernetes Secrets), never generated here.
set -eu

HERE=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
ROOT=$(dirname -- "$HERE")
cd "$ROOT"
PYTHON=${COURSEBOTS_PYTHON:-python}
FLASK="$PYTHON -m flask --app lti_tool"

metrics_dir() {
    if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
        mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
    fi
}

role=${1:-web}
[ $# -gt 0 ] && shift
metrics_dir  # prometheus_client writes there from the first metric on, in every role

case "$role" in
    web)
        if [ "${MIGRATE_ON_START:-1}" = "1" ]; then
            $FLASK db upgrade
        fi
        exec $PYTHON -m gunicorn -c "$HERE/gunicorn.conf.py" "$@" wsgi:app
        ;;
    worker)
        exec $FLASK materials rq-worker "$@"
        ;;
    migrate)
        exec $FLASK db upgrade "$@"
        ;;
    purge)
        exec $FLASK privacy purge "$@"
        ;;
    model)
        exec $PYTHON -m course_bots.llm serve --host "${MODEL_HOST:-0.0.0.0}" "$@"
        ;;
    *)
        exec "$role" "$@"
        ;;
esac
