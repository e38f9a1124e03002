"""`python -m proxy` is the `spm-proxy` command."""

from proxy.cli import main

raise SystemExit(main())
