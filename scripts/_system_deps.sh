# Sourced by scripts/test: Debian packages the browser and distributed-mode
# tests need (headless Chromium, Redis). Installed only where missing and
# only when we may (root with apt); otherwise those tests skip with a reason.
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
if [ ${#need[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing ${need[*]} (apt)" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}") >/dev/null 2>&1 \
    || echo "warning: could not install ${need[*]}; tests needing them will skip" >&2
fi
