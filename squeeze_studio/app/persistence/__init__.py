"""Where the app keeps things on disk: data folder, session autosave, history index, subject libraries."""
