"""overnight's library: pure stage functions; never imports luigi."""
