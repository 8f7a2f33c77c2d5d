"""The report of a sweep: tables (``data``), plots and the self-contained HTML (``build``)."""
