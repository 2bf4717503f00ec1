"""stpn_tf: weakly-supervised temporal action localization (STPN and successors) in TensorFlow."""
