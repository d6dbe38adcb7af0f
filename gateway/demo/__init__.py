"""``branchd demo`` and ``branchd sim``: the branch with simulated surroundings."""
