"""Sources: the only code that reads the outside world. Each turns it into evidence and gaps."""
