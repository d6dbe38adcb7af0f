"""The day's close (日终): counted, compared with the platform and the bank, closed."""
