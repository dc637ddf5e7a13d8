"""Entry point: dispatch on argv[0] like the k3s multicall binary (k3s, kubectl, crictl, ctr)."""
import sys

from k3s_standin.main import main

sys.exit(main(sys.argv))
