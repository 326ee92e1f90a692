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
exec imagestudio serve "$@"
