"""``nn.parallel``: data-parallel training over the ranks of ``tensorgrad.distributed``.

    import tensorgrad.distributed as dist
    dist.init_process_group()
    model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ddp = nn.parallel.DistributedDataParallel(model)   # ddp(x), loss.backward(): averaged
"""

from .distributed import DistributedDataParallel
from .sync_batchnorm import SyncBatchNorm, SyncBatchNormFunction

__all__ = ["DistributedDataParallel", "SyncBatchNorm", "SyncBatchNormFunction"]
