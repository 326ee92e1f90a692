"""Getting the models onto this machine and knowing whether what is there is whole.

* :mod:`.files` — which files of a hub repository a pipeline needs (a pure function);
* :mod:`.verify` — is a diffusers folder complete: components, configs, safetensors headers;
* :mod:`.cache` — the Hugging Face cache layout (found and written the way huggingface_hub does);
* :mod:`.state` — present / partial / missing / tiny for each model, and its size on disk;
* :mod:`.download` — plan (files, sizes, disk check), then fetch and verify; built on
  :mod:`.transfer` (resumable, checksummed), :mod:`.destinations` (cache or folder) and
  :mod:`.progress` (bytes, rate, ETA events);
* :mod:`.service` — what the CLI, the API and the UI call: list, download (with progress), cancel, remove.

Importing this package is cheap (no torch, no network client): ``models list`` must answer at once.
"""
