#!/usr/bin/env bash
# Install rcluster from this checkout: the binary (cargo install; the preload library is built by
# build.rs and embedded in it), shell completions and man pages.
#   ./install.sh                 # binary into cargo's bin dir, docs into ~/.local/share (or /usr/local/share as root)
#   PREFIX=/opt/rcluster ./install.sh   # binary into $PREFIX/bin, docs into $PREFIX/share
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v cargo >/dev/null 2>&1; then
  echo "install.sh: cargo is needed (https://rustup.rs)" >&2
  exit 1
fi

if [ -n "${PREFIX:-}" ]; then
  cargo install --path . --locked --root "$PREFIX"
  bin="$PREFIX/bin/rcluster"
  share="$PREFIX/share"
else
  cargo install --path . --locked
  bin="$(command -v rcluster || echo "${CARGO_HOME:-$HOME/.cargo}/bin/rcluster")"
  if [ "$(id -u)" = 0 ]; then share=/usr/local/share; else share="${XDG_DATA_HOME:-$HOME/.local/share}"; fi
fi

install -d "$share/bash-completion/completions" "$share/zsh/site-functions" "$share/fish/vendor_completions.d" "$share/man/man1"
install -m 0644 completions/rcluster.bash "$share/bash-completion/completions/rcluster"
install -m 0644 completions/_rcluster "$share/zsh/site-functions/_rcluster"
install -m 0644 completions/rcluster.fish "$share/fish/vendor_completions.d/rcluster.fish"
install -m 0644 man/*.1 "$share/man/man1/"

echo "installed: $bin"
echo "completions: $share/{bash-completion/completions,zsh/site-functions,fish/vendor_completions.d}"
echo "man pages:   $share/man/man1 (man rcluster)"
case ":$PATH:" in
  *":$(dirname "$bin"):"*) ;;
  *) echo "note: add $(dirname "$bin") to PATH" ;;
esac
