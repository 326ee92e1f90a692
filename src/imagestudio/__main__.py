"""``python -m imagestudio`` runs the same CLI as the ``imagestudio`` console script."""

from imagestudio.cli import main

if __name__ == "__main__":
    main()
