from procrun.cli import main

raise SystemExit(main())
