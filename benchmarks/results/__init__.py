"""Result scripts: reports, tables and figures from trained models."""
