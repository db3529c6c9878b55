from openmwaa.cli.main import main

raise SystemExit(main())
