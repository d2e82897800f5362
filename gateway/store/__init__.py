"""The batch store on disk: commit protocol, recovery, inventory and marks."""
