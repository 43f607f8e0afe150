"""The demo: realistic product traffic for the collector (``traffic``), sending it over HTTP
(``sender``, ``driver``), and what landed where (``report``)."""
