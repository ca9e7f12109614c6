from athanor.cli import main

raise SystemExit(main())
