"""Pages the hub serves to the public, without credentials."""
