"""Tables of the fulfillment domain."""
