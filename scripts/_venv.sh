# Sourced by scripts/run and scripts/test: creates .venv and installs the
# project with the extras in $EXTRAS (default: the service), pinned by
# constraints.txt, when missing or when pyproject.toml or the lock changed.
VENV="${AUTOINIT_VENV:-.venv}"
EXTRAS="${EXTRAS:-service}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
fi
stamp="$VENV/.installed-$(cat pyproject.toml constraints.txt | sha1sum | cut -c1-12)-${EXTRAS//,/-}"
if [ ! -f "$stamp" ]; then
  "$VENV/bin/pip" install -q -c constraints.txt -e ".[$EXTRAS]"
  touch "$stamp"
fi
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
