#!/usr/bin/env sh
# Start the imagestudio server; every argument is passed on to `imagestudio serve`.
#
# expandable_segments stops PyTorch's CUDA allocator from fragmenting memory over a long session of
# differently sized images (a common cause of out-of-memory on 8-16 GB cards). A value you set wins.
: "${PYTORCH_CUDA_ALLOC_CONF:=expandable_segments:True}"
export PYTORCH_CUDA_ALLOC_CONF

here=$(cd "$(dirname "$0")" && pwd)
# Use the project's virtual environment when there is one (see README: python3 -m venv .venv).
if [ -f "$here/.venv/bin/activate" ]; then
    . "$here/.venv/bin/activate"
fi
# A config.yaml next to this script is used from wherever it is started, unless a config was given
# (--config, or $IMAGESTUDIO_CONFIG).
if [ -z "${IMAGESTUDIO_CONFIG:-}" ] && [ -f "$here/config.yaml" ]; then
    given=""
    for arg in "$@"; do
        case "$arg" in --config | --config=*) given=1 ;; esac
    done
    if [ -z "$given" ]; then
        IMAGESTUDIO_CONFIG="$here/config.yaml"
        export IMAGESTUDIO_CONFIG
    fi
fi
exec imagestudio serve "$@"
