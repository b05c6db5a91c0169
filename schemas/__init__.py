"""Domain types shared by every arbstream service. Nothing venue-specific lives here."""
