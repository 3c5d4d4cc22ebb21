"""`python -m firmware_tools`: the same CLI as the `firmware-tools` console script."""

from firmware_tools.cli import main

if __name__ == "__main__":
    main(prog_name="firmware-tools")
