"""printing domain."""
