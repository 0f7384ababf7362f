from terminal.interface.cli import main

raise SystemExit(main())
