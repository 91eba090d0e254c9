#!/usr/bin/env bash
# Render every kustomize overlay of a manifest tree (and its canary, when it has one) and
# validate the result strictly.
#
# Usage: deploy/k8s/validate.sh [K8S_DIR]      (default: deploy/k8s; `make lint-k8s` runs it)
# Environment:
#   KUBECTL              kubectl with built-in kustomize (default: kubectl on PATH)
#   KUBERNETES_VALIDATE  kubernetes-validate (default: on PATH)
#   K8S_VERSIONS         Kubernetes versions to validate against, space-separated
#   K8S_OUT              where the rendered overlays are written (default: build/k8s)
#
# An overlay fails when it does not render, renders nothing, or when kubernetes-validate
# --strict reports an ERROR or a WARN line for any version (a WARN means a resource it has no
# schema for, e.g. a misspelt or removed apiVersion, which the validator itself lets pass).
set -euo pipefail

dir=${1:-deploy/k8s}
kubectl=${KUBECTL:-kubectl}
validator=${KUBERNETES_VALIDATE:-kubernetes-validate}
versions=${K8S_VERSIONS:-1.37.0}
out=${K8S_OUT:-build/k8s}

die() { echo "lint-k8s: $*" >&2; exit 1; }

[ -d "$dir/overlays" ] || die "no overlays directory under $dir"
mkdir -p "$out"

failed=0
checked=0
for overlay in "$dir"/overlays/*/ "$dir"/canary/; do
    [ -d "$overlay" ] || continue
    name=$(basename "$overlay")
    rendered="$out/$name.yaml"
    echo "lint-k8s: rendering $overlay"
    if ! "$kubectl" kustomize "$overlay" >"$rendered"; then
        echo "lint-k8s: FAILED: $overlay does not render" >&2
        failed=1
        continue
    fi
    if ! grep -q '^kind:' "$rendered"; then
        echo "lint-k8s: FAILED: $overlay renders no resource" >&2
        failed=1
        continue
    fi
    for version in $versions; do
        rc=0
        report=$("$validator" --strict --quiet --kubernetes-version "$version" "$rendered" 2>&1) || rc=$?
        [ -z "$report" ] || printf '%s\n' "$report"
        if [ "$rc" -ne 0 ] || grep -qE '^(WARN|ERROR)' <<<"$report"; then
            echo "lint-k8s: FAILED: overlay $name against Kubernetes $version" >&2
            failed=1
        else
            echo "lint-k8s: overlay $name is valid for Kubernetes $version"
        fi
    done
    checked=$((checked + 1))
done

[ "$checked" -gt 0 ] || die "no overlay rendered under $dir/overlays"
[ "$failed" -eq 0 ] || die "manifests under $dir are invalid"
