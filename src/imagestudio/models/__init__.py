"""Getting the models onto this machine and knowing whether what is there is whole.

* :mod:`.files` — which files of a hub repository a pipeline needs (a pure function);
* :mod:`.verify` — is a diffusers folder complete: components, configs, safetensors headers;
* :mod:`.cache` — the Hugging Face cache layout (found and written the way huggingface_hub does);
* :mod:`.locate` — where a model's folder is (the one search order); :mod:`.state` — present / partial /
  missing / tiny for each model, its size on disk, and the loader's refusal of an incomplete folder;
* :mod:`.download` — plan (files, sizes, disk check), then fetch and verify; built on
  :mod:`.transfer` (resumable, checksummed), :mod:`.destinations` (cache or folder) and
  :mod:`.progress` (bytes, rate, ETA events);
* :mod:`.background` — downloads on their own threads for the API and the UI (progress, cancel);
  :mod:`.removal` — what ``models remove`` deletes;
* :mod:`.tiny` — the tiny models, built on first use; :mod:`.random_weights` — every random-weight model
  (tiny, full-size for the benchmarks, meta-device for sizing) built from configs; :mod:`.configs` — the
  real models' configs that ship with the package; :mod:`.processor` — the Qwen edit processor's folder.

Importing this package is cheap (no torch, no network client): ``models list`` must answer at once.
"""
