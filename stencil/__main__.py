from stencil.cli.app import main

main()
