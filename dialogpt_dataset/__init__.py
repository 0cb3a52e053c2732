"""Reddit dialogue data: Pushshift dumps -> conversations -> Arrow/Parquet, as a datasets builder."""

# Heavy modules (datasets, datatrove) load on first use, so `import dialogpt.legacy_tsv` stays light.
_EXPORTS = {
    "BuildConfig": "dialogpt_dataset.build",
    "BuildResult": "dialogpt_dataset.build",
    "build_dataset": "dialogpt_dataset.build",
    "push_dataset": "dialogpt_dataset.build",
    "RedditDialog": "dialogpt_dataset.builder",
    "RedditDialogConfig": "dialogpt_dataset.builder",
    "build_sessions": "dialogpt_dataset.threads",
    "write_month": "dialogpt_dataset.synthetic",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'dialogpt_dataset' has no attribute {name!r}")
