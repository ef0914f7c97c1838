"""A trained policy outside its run folder: one file, a model card, the Hugging Face Hub, shipped ones.

- `policy_file`: the `.tt` one-file format (safetensors + JSON metadata, checksummed, no pickle).
- `card`: the model card (README.md) a run's files and evaluations describe.
- `hub`: `push` a run to a Hub repository; `resolve` a name (a shipped policy, a local file or a
  Hub repository, through huggingface_hub's cache) to a file.
- `pretrained`: the policies shipped inside the package (`pretrained/<name>.tt` with its card).
"""
