# Sourced by scripts/up and scripts/test (from the checkout's root, with .venv built).
# As root, openmwaa runs each environment as a system user of its own (README, Security): those
# users must reach this checkout (openmwaa's Airflow plugin), the Python it runs on and the
# runtime cache. Directories on the way that others may not enter (such as /root) get o+x:
# enter only, not list; the secrets in them keep their own modes.
if [ "$(id -u)" = 0 ]; then
  base=$(.venv/bin/python -c 'import sys; print(sys.base_prefix)')
  for path in "$PWD" "$base" "${OPENMWAA_RUNTIME_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}}"; do
    while [ "$path" != / ]; do
      if [ -d "$path" ] && [ $(( $(stat -c '0%a' "$path") & 1 )) = 0 ]; then
        echo "openmwaa: letting environments' users enter $path (chmod o+x)" >&2
        chmod o+x "$path"
      fi
      path=$(dirname "$path")
    done
  done
fi
