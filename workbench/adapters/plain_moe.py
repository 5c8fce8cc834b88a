"""Plain MoE transformers (every layer softmax attention, `all_full_attention`): routing, and attention stats where
the attention block uses transformers' attention interface. What the routing columns' "probabilities" are:

- Qwen3-MoE, OLMoE, Mixtral: softmax over all experts; weights = the top-k probabilities (renormalised when
  norm_topk_prob; Mixtral always renormalises).
- DeepSeek-V3: sigmoid scores, chosen by score + correction bias inside the best expert groups; weights = chosen
  scores renormalised x routed_scaling_factor; entropy/mass/margin use the scores normalised to sum 1. The first
  `first_k_dense_replace` layers are dense and have no router.
"""

from .base import Adapter, RouterSite
from .layer_kinds import all_full_attention
from .registry import register

SOFTMAX_ROUTER = RouterSite(path="mlp.gate", scoring="softmax")
ROUTING = "routing ({scoring}); attention stats"

QWEN3_MOE = register(Adapter(name="qwen3_moe", model_types=("qwen3_moe",), architecture="Qwen3MoeForCausalLM",
                             layer_kinds_of=all_full_attention, router=SOFTMAX_ROUTER,
                             captures=ROUTING.format(scoring="softmax")))
OLMOE = register(Adapter(name="olmoe", model_types=("olmoe",), architecture="OlmoeForCausalLM",
                         layer_kinds_of=all_full_attention, router=SOFTMAX_ROUTER,
                         captures=ROUTING.format(scoring="softmax")))
MIXTRAL = register(Adapter(name="mixtral", model_types=("mixtral",), architecture="MixtralForCausalLM",
                           layer_kinds_of=all_full_attention, router=SOFTMAX_ROUTER,
                           captures=ROUTING.format(scoring="softmax, always renormalised")))
DEEPSEEK_V3 = register(Adapter(name="deepseek_v3", model_types=("deepseek_v3",), architecture="DeepseekV3ForCausalLM",
                               layer_kinds_of=all_full_attention,
                               router=RouterSite(path="mlp.gate", scoring="sigmoid", shared_expert="mlp.shared_experts"),
                               captures="routing (sigmoid + bias, grouped top-k); MLA attention stats"))
