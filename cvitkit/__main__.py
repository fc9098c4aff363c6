from cvitkit.pipeline import main

raise SystemExit(main())
