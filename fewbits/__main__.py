"""``python -m fewbits``: the same as the ``fewbits`` command."""

from fewbits.cli import main

if __name__ == "__main__":
    main(prog_name="fewbits")
