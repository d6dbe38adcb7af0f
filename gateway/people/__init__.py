"""Card holders and their cards, shared by every feature that acts on a holder.

The rows, the three state machines of a card, and the personal-data vault
(fields sealed at rest, the identity number's blind index).
"""
