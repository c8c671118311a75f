"""Tables of the returns domain."""
