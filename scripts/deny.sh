#!/usr/bin/env bash
# cargo deny: licenses, bans, sources (deny.toml), and RustSec advisories: against the
# live database where GitHub is reachable, else against the snapshot in
# deny/advisory-db (see its README).
#   scripts/deny.sh                     check
#   scripts/deny.sh --refresh DB_DIR    rewrite the snapshot from an advisory-db checkout
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
snapshot=deny/advisory-db

# The names of the registry crates in Cargo.lock (the workspace's own have no advisories).
lock_names() { awk '/^\[\[package\]\]/ { n = "" } /^name = / { n = $3; gsub(/"/, "", n) } /^source = "registry/ { print n }' Cargo.lock | sort -u; }

if [ "${1:-}" = "--refresh" ]; then
  src="${2:?usage: scripts/deny.sh --refresh DB_DIR}"
  rm -rf "$snapshot/crates" && mkdir -p "$snapshot/crates"
  for c in $(lock_names); do
    if [ -d "$src/crates/$c" ]; then cp -r "$src/crates/$c" "$snapshot/crates/"; fi
  done
  lock_names > "$snapshot/covers.txt"
  cp "$src/LICENSE.txt" "$snapshot/"
  git -C "$src" log -1 --format='%H %cI' > "$snapshot/SOURCE"
  echo "deny: snapshot refreshed from $(cat "$snapshot/SOURCE")"
  exit 0
fi

if ! command -v cargo-deny >/dev/null 2>&1; then
  echo "deny: installing cargo-deny"
  cargo install --locked --quiet cargo-deny@0.20.2 --no-default-features
fi
cargo deny --locked check licenses bans sources

if timeout 10 git ls-remote https://github.com/rustsec/advisory-db HEAD >/dev/null 2>&1; then
  cargo deny --locked check advisories
  exit 0
fi

missing=$(lock_names | comm -23 - "$snapshot/covers.txt")
if [ -n "$missing" ]; then
  echo "deny: the advisory snapshot does not cover these crates of Cargo.lock:" $missing >&2
  echo "deny: refresh it: scripts/deny.sh --refresh <advisory-db checkout>" >&2
  exit 1
fi
read -r commit date < "$snapshot/SOURCE"
echo "deny: GitHub unreachable; advisories from the snapshot of advisory-db $commit ($date)"
# cargo-deny reads a database as a git checkout under db-path, in a directory named
# after the hash of its URL (that of the default database).
root="$PWD/target/advisory-db"
db="$root/advisory-db-3157b0e258782691"
rm -rf "$root" && mkdir -p "$db"
cp -r "$snapshot/crates" "$db/"
git -C "$db" init -q
git -C "$db" add -A
GIT_AUTHOR_DATE="$date" GIT_COMMITTER_DATE="$date" \
  git -C "$db" -c user.name=snapshot -c user.email=snapshot@localhost commit -qm "advisory-db $commit"
git -C "$db" fetch -q . HEAD
{ cat deny.toml; printf '\n[advisories]\ndb-path = "%s"\n' "$root"; } > target/deny-snapshot.toml
cargo deny --offline --locked --config target/deny-snapshot.toml check advisories
