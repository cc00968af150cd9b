"""Ready sweep configs, installed as the package ``search.configs``."""
