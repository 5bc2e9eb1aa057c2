"""The paper's ablations repeated on SynthSubjects: ``squeeze ablate --out docs/``."""
