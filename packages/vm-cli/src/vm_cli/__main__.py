"""``python -m vm_cli`` is the ``vm`` command."""

from vm_cli.main import main

main()
