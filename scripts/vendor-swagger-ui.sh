#!/usr/bin/env bash
# Fetch the Swagger UI assets /docs serves, from the npm registry, at the pinned version, and
# record their digests in src/ml_service/http/static/docs/SOURCE.json.
# Usage: scripts/vendor-swagger-ui.sh [VERSION]   (default: the version SOURCE.json names)
set -euo pipefail

cd "$(dirname "$0")/.."
target=src/ml_service/http/static/docs
version=${1:-$(python3 -c "import json; print(json.load(open('$target/SOURCE.json'))['version'])")}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# npm checks the tarball against the registry's integrity record while it downloads it.
tarball=$(cd "$work" && npm pack --silent "swagger-ui-dist@$version")
integrity=$(cd "$work" && npm view "swagger-ui-dist@$version" dist.integrity)
tar -xzf "$work/$tarball" -C "$work"
cp "$work/package/swagger-ui-bundle.js" "$work/package/swagger-ui.css" "$target/"
cp "$work/package/LICENSE" "$target/LICENSE.swagger-ui"

python3 - "$target" "$version" "$integrity" <<'PY'
import hashlib, json, pathlib, sys
target, version, integrity = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
files = ("swagger-ui-bundle.js", "swagger-ui.css", "LICENSE.swagger-ui")
record = {
    "package": "swagger-ui-dist",
    "version": version,
    "tarball_integrity": integrity,
    "files": {name: hashlib.sha256((target / name).read_bytes()).hexdigest() for name in files},
}
(target / "SOURCE.json").write_text(json.dumps(record, indent=2) + "\n")
PY
echo "vendor-swagger-ui: swagger-ui-dist $version in $target"
