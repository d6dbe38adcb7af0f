"""The simulated bank core (tests and demo only); see :mod:`simulators.bank.simulator`."""

from simulators.bank.simulator import BANK_NAME, Account, BankSimulator, run_bank_simulator

__all__ = ["BANK_NAME", "Account", "BankSimulator", "run_bank_simulator"]
