"""Observable app state with change signals, and the actions on it. No widgets here."""
