from reliq.cli import main

main()
