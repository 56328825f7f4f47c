"""Patient records (encrypted identity), blind-index lookup and care-team membership."""
