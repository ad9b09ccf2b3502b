"""Administration: what a platform's administrator sees of registrations, models, retention and usage."""
