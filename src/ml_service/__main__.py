"""`python -m ml_service` is the same as the `ml-service` command."""

from ml_service.cli import main

raise SystemExit(main())
